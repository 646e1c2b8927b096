"""Deterministic generator of DummyJSON-shaped shop data at any scale.

The real API holds ~200 records per endpoint; the demo and the benchmark need realistic data at
a million carts, and tests need it reproducible. Records have the same keys, nesting and types as
the real responses (see `/work/shared/dummyjson/samples/`), and carts are consistent with the
catalogue exactly the way the real service computes them:

- a line copies the product's `title`, `price`, `discountPercentage` and `thumbnail`;
- line `total = price * quantity` (unrounded float), `discountedTotal =
  round(total * (1 - discountPercentage / 100), 2)`;
- cart `total`/`discountedTotal` = the left-to-right sum of the line values rounded to 2 places,
  `totalProducts` = number of lines, `totalQuantity` = sum of quantities.

Each endpoint draws from its own `random.Random` stream (seeded from `seed` and the endpoint
name), so the files can be written in parallel and the same seed always gives the same bytes.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.schema import ENDPOINTS

CDN = "https://cdn.dummyjson.com"
STAMP = "2025-04-30T09:41:02.053Z"  # the real catalogue's createdAt/updatedAt
CHUNK = 20_000  # records per write() call: bounds memory, keeps syscalls few
PARALLEL_MIN_RECORDS = 200_000  # below this a process pool costs more than it saves


@dataclass(frozen=True)
class _Category:
    slug: str
    low: float  # price range, dollars
    high: float
    nouns: tuple[str, ...]
    brands: tuple[str, ...]  # empty: products of this category have no `brand` key
    tags: tuple[str, ...]


_CATEGORIES = (
    _Category("beauty", 4, 60, ("Mascara", "Lipstick", "Powder Canister", "Eyeshadow Palette",
              "Nail Polish", "Face Serum"), ("Essence", "Glamour Beauty", "Velvet Touch",
              "Chic Cosmetics"), ("beauty", "makeup", "skincare")),
    _Category("fragrances", 25, 180, ("Eau de Parfum", "Cologne", "Body Mist", "Perfume Oil"),
              ("Calvin Klein", "Chanel", "Dior", "Gucci"), ("fragrances", "perfumes")),
    _Category("furniture", 80, 2500, ("Sofa", "Bed", "Office Chair", "Bedside Table",
              "Bathroom Sink With Mirror", "Bookshelf"), ("Annibale Colombo", "Furniture Co.",
              "Knoll", "Bath Trends"), ("furniture", "living room", "bedroom")),
    _Category("groceries", 0.5, 30, ("Apple", "Beef Steak", "Cucumber", "Eggs", "Honey Jar",
              "Rice", "Milk", "Water", "Green Bell Pepper", "Ice Cream"), (),
              ("fruits", "vegetables", "meat", "dairy", "beverages")),
    _Category("laptops", 400, 2600, ("Laptop", "Notebook Pro", "Ultrabook", "Chromebook"),
              ("Apple", "Asus", "Huawei", "Lenovo", "Dell"), ("electronics", "laptops")),
    _Category("mens-shirts", 12, 60, ("Short Sleeve Shirt", "Check Shirt", "Polo Shirt",
              "Linen Shirt"), ("Fashion Trends", "Classic Wear", "Urban Chic"),
              ("clothing", "men's shirts")),
    _Category("mens-watches", 60, 2200, ("Chronograph Watch", "Automatic Watch", "Dive Watch",
              "Dress Watch"), ("Rolex", "Longines", "IWC", "Brown Leather"),
              ("watches", "men's watches", "accessories")),
    _Category("mobile-accessories", 8, 260, ("Charger", "Airpods", "Phone Case", "Power Bank",
              "Selfie Stick"), ("Apple", "Samsung", "Amazon", "Beats"),
              ("electronics", "accessories")),
    _Category("smartphones", 90, 1500, ("iPhone", "Galaxy", "Pixel", "Reno", "Find"),
              ("Apple", "Samsung", "Oppo", "Vivo", "Realme"), ("smartphones", "electronics")),
    _Category("sports-accessories", 4, 220, ("Basketball Rim", "Baseball Ball", "Tennis Racket",
              "Feather Shuttlecock", "Football", "Cricket Helmet"), ("Sportsline", "ProGear",
              "FieldMaster"), ("sports", "fitness", "equipment")),
    _Category("tops", 12, 70, ("Frock", "Dress", "Blouse", "Tank Top", "Crop Top"),
              ("Fashion Vogue", "Chic Trends", "Elegance Wear"), ("clothing", "tops", "women")),
    _Category("womens-shoes", 18, 160, ("Slipper", "Sandals", "Heels", "Sneakers", "Boots"),
              ("Comfort Trends", "Fashion Diva", "Step Style"), ("footwear", "women's shoes")),
)  # fmt: skip

_ADJECTIVES = (
    "Blue", "Black", "Classic", "Deluxe", "Elegant", "Essential", "Fresh", "Golden", "Gray",
    "Premium", "Rustic", "Silver", "Smart", "Sport", "Urban", "Vintage", "White", "Wooden",
)  # fmt: skip
_WARRANTY = ("1 week warranty", "1 month warranty", "3 months warranty", "6 months warranty",
             "1 year warranty", "2 year warranty", "3 year warranty", "5 year warranty",
             "Lifetime warranty", "No warranty")  # fmt: skip
_SHIPPING = ("Ships in 1 week", "Ships in 1-2 business days", "Ships in 3-5 business days",
             "Ships in 2 weeks", "Ships in 1 month", "Ships overnight")  # fmt: skip
_RETURNS = ("No return policy", "7 days return policy", "30 days return policy",
            "60 days return policy", "90 days return policy")  # fmt: skip
_COMMENTS = ("Very satisfied!", "Great value for money!", "Fast shipping!", "Very pleased!",
             "Would buy again!", "Poor quality!", "Would not recommend!", "Not as described!",
             "Very dissatisfied!", "Highly impressed!")  # fmt: skip
_FEMALE = (
    "Emily", "Sophia", "Emma", "Olivia", "Ava", "Isabella", "Mia", "Charlotte", "Aria", "Amelia",
    "Harper", "Evelyn", "Abigail", "Ella", "Scarlett", "Grace", "Chloe", "Natalie", "Lily",
)  # fmt: skip
_MALE = (
    "Michael", "James", "Alexander", "Ethan", "Liam", "Noah", "Logan", "Lucas", "Mason", "Elijah",
    "Oliver", "Benjamin", "William", "Henry", "Jackson", "Daniel", "Samuel", "Dylan",
)  # fmt: skip
_FIRST = _FEMALE + _MALE
_LAST = (
    "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "Tyler", "Torres", "Parker", "Wells",
)  # fmt: skip
_STATES = (
    ("Alabama", "AL"), ("Arizona", "AZ"), ("California", "CA"), ("Colorado", "CO"),
    ("Florida", "FL"), ("Georgia", "GA"), ("Illinois", "IL"), ("Mississippi", "MS"),
    ("New Hampshire", "NH"), ("New York", "NY"), ("Ohio", "OH"), ("Pennsylvania", "PA"),
    ("Texas", "TX"), ("Washington", "WA"), ("Wisconsin", "WI"),
)  # fmt: skip
_CITIES = ("Phoenix", "Houston", "Chicago", "Los Angeles", "San Francisco", "Denver", "Seattle",
           "Columbus", "Jacksonville", "Fort Worth", "San Antonio", "Dallas", "Austin")  # fmt: skip
_STREETS = ("Main Street", "Fifth Street", "Tenth Street", "Oak Street", "Maple Avenue",
            "Pine Street", "Cedar Lane", "Elm Street", "Lincoln Avenue")  # fmt: skip
_UNIVERSITIES = ("University of Wisconsin--Madison", "Ohio State University", "Purdue University",
                 "Stanford University", "University of Michigan", "Rice University",
                 "Boston University", "University of Washington")  # fmt: skip
_COMPANY_WORDS = ("Dooley", "Kozey", "Cronin", "Spinka", "Dickinson", "Schiller", "Kuhn",
                  "Bednar", "Lakin", "Wehner", "Hettinger", "Pacocha", "Rolfson")  # fmt: skip
_DEPARTMENTS = ("Engineering", "Support", "Marketing", "Sales", "Accounting", "Legal",
                "Human Resources", "Product Management", "Research and Development")  # fmt: skip
_JOB_TITLES = ("Sales Manager", "Support Specialist", "Software Engineer", "Accountant",
               "Product Manager", "Research Analyst", "Web Developer", "Legal Counsel")  # fmt: skip
_CARD_TYPES = ("Visa", "Mastercard", "American Express", "Diners Club International", "JCB",
               "Discover")  # fmt: skip
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "CHF")
_IBAN_COUNTRIES = ("GB", "DE", "FR", "NL", "ES", "IT")
_USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/96.0.4664.93 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Edge/97.0.1072.76 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:95.0) Gecko/20100101 Firefox/95.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 15_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/15.2 Mobile/15E148 Safari/604.1",
)
_EYES = ("Green", "Brown", "Blue", "Gray", "Hazel", "Amber", "Red", "Violet")
_HAIR_COLORS = ("Brown", "Black", "Blonde", "Red", "Gray", "White", "Green", "Purple")
_HAIR_TYPES = ("Curly", "Straight", "Wavy", "Kinky")
_BLOOD = ("O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+")
_ROLES = ("user",) * 8 + ("admin", "moderator")
_PHONE_CODES = ("1", "44", "49", "61", "81", "91", "33", "34")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9&]+", "-", text.lower()).strip("-")


def _rng(seed: int, endpoint: str) -> random.Random:
    """One independent stream per endpoint (str seeds hash via SHA-512: stable everywhere)."""
    return random.Random(f"dummyjson/{seed}/{endpoint}")


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10**n)).zfill(n)


def _products(n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = _rng(seed, "products")
    r = rng.random
    for pid in range(1, n + 1):
        cat = _CATEGORIES[int(r() * len(_CATEGORIES))]
        noun = cat.nouns[int(r() * len(cat.nouns))]
        title = f"{_ADJECTIVES[int(r() * len(_ADJECTIVES))]} {noun}"
        # Log-uniform so every category has cheap and dear items; mostly "x.99" prices.
        dollars = math.exp(math.log(cat.low) + r() * math.log(cat.high / cat.low))
        price = float(int(dollars)) + 0.99 if r() < 0.85 else round(dollars, 2)
        brand = cat.brands[int(r() * len(cat.brands))] if cat.brands else None
        stock = int(r() * 150)
        path = f"{CDN}/product-images/{cat.slug}/{_slug(title)}"
        record: dict[str, Any] = {
            "id": pid,
            "title": title,
            "description": f"The {title} is a dependable pick from our {cat.slug} range.",
            "category": cat.slug,
            "price": price,
            "discountPercentage": round(0.5 + r() * 19.5, 2),
            "rating": round(2.5 + r() * 2.5, 2),
            "stock": stock,
            "tags": rng.sample(cat.tags, 1 + int(r() * min(2, len(cat.tags)))),
        }
        if brand is not None:
            record["brand"] = brand
        brand_code = (brand or "BRD")[:3].upper()
        record.update(
            sku=f"{cat.slug[:3].upper()}-{brand_code}-{_slug(noun)[:3].upper()}-{pid:03d}",
            weight=1 + int(r() * 10),
            dimensions={
                "width": round(5 + r() * 25, 2),
                "height": round(5 + r() * 25, 2),
                "depth": round(5 + r() * 25, 2),
            },
            warrantyInformation=_WARRANTY[int(r() * len(_WARRANTY))],
            shippingInformation=_SHIPPING[int(r() * len(_SHIPPING))],
            availabilityStatus="Out of Stock"
            if stock == 0
            else "Low Stock"
            if stock < 8
            else "In Stock",
            reviews=[_review(r) for _ in range(3)],
            returnPolicy=_RETURNS[int(r() * len(_RETURNS))],
            minimumOrderQuantity=1 + int(r() * 48),
            meta={
                "createdAt": STAMP,
                "updatedAt": STAMP,
                "barcode": _digits(rng, 13),
                "qrCode": f"{CDN}/public/qr-code.png",
            },
            images=[f"{path}/{i}.webp" for i in range(1, 2 + int(r() * 3))],
            thumbnail=f"{path}/thumbnail.webp",
        )
        yield record


def _review(r: Any) -> dict[str, Any]:
    first, last = _FIRST[int(r() * len(_FIRST))], _LAST[int(r() * len(_LAST))]
    return {
        "rating": 1 + int(r() * 5),
        "comment": _COMMENTS[int(r() * len(_COMMENTS))],
        "date": STAMP,
        "reviewerName": f"{first} {last}",
        "reviewerEmail": f"{first.lower()}.{last.lower()}@x.dummyjson.com",
    }


def _address(r: Any) -> dict[str, Any]:
    state, code = _STATES[int(r() * len(_STATES))]
    return {
        "address": f"{1 + int(r() * 9999)} {_STREETS[int(r() * len(_STREETS))]}",
        "city": _CITIES[int(r() * len(_CITIES))],
        "state": state,
        "stateCode": code,
        "postalCode": f"{int(r() * 100000):05d}",
        "coordinates": {"lat": round(r() * 180 - 90, 6), "lng": round(r() * 360 - 180, 6)},
        "country": "United States",
    }


def _users(n: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = _rng(seed, "users")
    r = rng.random
    bits = rng.getrandbits
    for uid in range(1, n + 1):
        gender, names = ("female", _FEMALE) if r() < 0.5 else ("male", _MALE)
        first, last = names[int(r() * len(names))], _LAST[int(r() * len(_LAST))]
        maiden = _LAST[int(r() * len(_LAST))] if gender == "female" and r() < 0.5 else ""
        username = f"{first}{last[0]}{uid}".lower()
        year = 1960 + int(r() * 47)
        w1, w2 = (
            _COMPANY_WORDS[int(r() * len(_COMPANY_WORDS))],
            _COMPANY_WORDS[int(r() * len(_COMPANY_WORDS))],
        )
        yield {
            "id": uid,
            "firstName": first,
            "lastName": last,
            "maidenName": maiden,
            "age": 2025 - year,
            "gender": gender,
            "email": f"{first}.{last}{uid}@x.dummyjson.com".lower(),
            "phone": f"+{_PHONE_CODES[int(r() * 8)]} {int(r() * 900) + 100}-"
            f"{int(r() * 900) + 100}-{int(r() * 9000) + 1000}",
            "username": username,
            "password": f"{username}pass",
            "birthDate": f"{year}-{1 + int(r() * 12)}-{1 + int(r() * 28)}",
            "image": f"https://dummyjson.com/icon/{username}/128",
            "bloodGroup": _BLOOD[int(r() * 8)],
            "height": round(150 + r() * 50, 2),
            "weight": round(45 + r() * 60, 2),
            "eyeColor": _EYES[int(r() * len(_EYES))],
            "hair": {"color": _HAIR_COLORS[int(r() * 8)], "type": _HAIR_TYPES[int(r() * 4)]},
            "ip": f"{1 + int(r() * 254)}.{int(r() * 256)}.{int(r() * 256)}.{1 + int(r() * 254)}",
            "address": _address(r),
            "macAddress": ":".join(f"{b:02x}" for b in bits(48).to_bytes(6, "big")),
            "university": _UNIVERSITIES[int(r() * len(_UNIVERSITIES))],
            "bank": {
                "cardExpire": f"{1 + int(r() * 12):02d}/{26 + int(r() * 6)}",
                "cardNumber": f"{bits(53) % 10**16:016d}",
                "cardType": _CARD_TYPES[int(r() * len(_CARD_TYPES))],
                "currency": _CURRENCIES[int(r() * len(_CURRENCIES))],
                "iban": f"{_IBAN_COUNTRIES[int(r() * 6)]}{bits(64) % 10**20:020d}",
            },
            "company": {
                "department": _DEPARTMENTS[int(r() * len(_DEPARTMENTS))],
                "name": f"{w1}, {w2} and Cronin" if r() < 0.5 else f"{w1} - {w2}",
                "title": _JOB_TITLES[int(r() * len(_JOB_TITLES))],
                "address": _address(r),
            },
            "ein": f"{int(r() * 900) + 100}-{int(r() * 900) + 100}",
            "ssn": f"{int(r() * 900) + 100}-{int(r() * 900) + 100}-{int(r() * 900) + 100}",
            "userAgent": _USER_AGENTS[int(r() * len(_USER_AGENTS))],
            "crypto": {
                "coin": "Bitcoin",
                "wallet": f"0x{bits(160):040x}",
                "network": "Ethereum (ERC20)",
            },
            "role": _ROLES[int(r() * len(_ROLES))],
        }


def _carts(n: int, users: int, products: int, seed: int) -> Iterator[dict[str, Any]]:
    if n and (users < 1 or products < 1):
        raise ValueError("carts need at least one user and one product")
    # The catalogue is regenerated here (cheap) so carts can be written in their own process.
    catalogue = [
        (p["id"], p["title"], p["price"], p["discountPercentage"], p["thumbnail"])
        for p in _products(products, seed)
    ]
    rng = _rng(seed, "carts")
    r = rng.random
    # The last user never shops, so "a user without carts" exists at every scale.
    buyers = max(1, users - 1)
    for cart_id in range(1, n + 1):
        size = min(1 + int(r() * 5), products)
        picks: list[int] = []
        while len(picks) < size:
            p = int(r() * products)
            if p not in picks:
                picks.append(p)
        if size >= 2 and r() < 0.03:
            picks[-1] = picks[0]  # the real API sometimes lists one product on two lines
        lines = []
        total = discounted = 0.0
        quantity = 0
        for p in picks:
            pid, title, price, pct, thumb = catalogue[p]
            q = 1 + int(r() * 5)
            line_total = price * q
            line_discounted = round(line_total * (1 - pct / 100), 2)
            lines.append({
                "id": pid, "title": title, "price": price, "quantity": q, "total": line_total,
                "discountPercentage": pct, "discountedTotal": line_discounted, "thumbnail": thumb,
            })  # fmt: skip
            total += line_total
            discounted += line_discounted
            quantity += q
        yield {
            "id": cart_id,
            "products": lines,
            "total": round(total, 2),
            "discountedTotal": round(discounted, 2),
            "userId": 1 + int(r() * buyers),
            "totalProducts": len(lines),
            "totalQuantity": quantity,
        }


def generate(carts: int, users: int, products: int, seed: int = 0) -> dict[str, Iterator[dict]]:
    """Lazy record streams per endpoint; nothing is generated until iterated."""
    return {
        "carts": _carts(carts, users, products, seed),
        "products": _products(products, seed),
        "users": _users(users, seed),
    }


def _write_endpoint(endpoint: str, path: Path, counts: dict[str, int], seed: int) -> Path:
    records = generate(seed=seed, **counts)[endpoint]
    tmp = path.with_name(f".{path.name}.tmp")
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with tmp.open("wb") as fh:
        chunk: list[bytes] = []
        for record in records:
            chunk.append(dumps(record, option=newline))
            if len(chunk) >= CHUNK:
                fh.write(b"".join(chunk))
                chunk.clear()
        fh.write(b"".join(chunk))
    os.replace(tmp, path)  # readers never see a half-written file
    return path


def write_dataset(
    out_dir: str | Path,
    carts: int,
    users: int,
    products: int,
    seed: int = 0,
    *,
    workers: int | None = None,
) -> dict[str, Path]:
    """Stream `{endpoint}.jsonl` files into `out_dir` with bounded memory.

    Endpoints are independent streams, so big data sets are written by up to three processes
    (`workers=None` decides from the size; `workers=1` forces a single process).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"carts": carts, "users": users, "products": products}
    paths = {name: out / f"{name}.jsonl" for name in ENDPOINTS}
    if workers is None:
        big = carts + users >= PARALLEL_MIN_RECORDS
        workers = min(len(ENDPOINTS), os.cpu_count() or 1) if big else 1
    if workers <= 1:
        for name, path in paths.items():
            _write_endpoint(name, path, counts, seed)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_endpoint, n, p, counts, seed) for n, p in paths.items()]
            for future in futures:
                future.result()
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.datagen", description="Write a DummyJSON-shaped data set."
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--carts", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--products", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = write_dataset(args.out_dir, args.carts, args.users, args.products, args.seed)
    elapsed = time.perf_counter() - started
    for name, path in paths.items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"done in {elapsed:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
