"""What the pipeline must write for the fixture data set (tests/fixtures/api), worked out by
hand from the fixture records: never computed by the code under test."""

USER_SUMMARY = """\
"user_id","first_name","age","city","carts","total_items","total_spent","total_spent_discounted"
1,"Emily",29,"Phoenix",2,11,1365.91,1250.18
2,"Michael",36,"Houston",1,6,204.94,177.36
3,"Sophia",42,"Washington",1,6,22.94,20.44
4,"James",45,"Seattle",1,13,309.87,283.72
5,"Emma",30,"Jacksonville",1,2,259.98,219.58
"""
CATEGORY_SUMMARY = """\
"category","total_sales","total_items_sold","total_sales_discounted"
"beauty",119.92,8,108.11
"furniture",799.99,1,729.59
"groceries",93.86,14,84.37
"mobile-accessories",389.97,3,329.37
"smartphones",299.99,1,279.92
"sports-accessories",359.91,9,332.05
"tops",100.00,2,87.87
"""
CART_DETAILS = """\
"cart_id","user_id","first_name","age","city","product_id","name","category","quantity","price","line_total","discounted_line_total"
1,1,"Emily",29,"Phoenix",162,"Blue Frock","tops",2,50.00,100.00,87.87
1,1,"Emily",29,"Phoenix",122,"iPhone 6","smartphones",1,299.99,299.99,279.92
1,1,"Emily",29,"Phoenix",16,"Apple","groceries",3,1.99,5.97,5.22
2,2,"Michael",36,"Houston",3,"Powder Canister","beauty",5,14.99,74.95,67.57
2,2,"Michael",36,"Houston",100,"Apple Airpods","mobile-accessories",1,129.99,129.99,109.79
3,3,"Sophia",42,"Washington",16,"Apple","groceries",2,1.99,3.98,3.48
3,3,"Sophia",42,"Washington",17,"Beef Steak","groceries",1,12.99,12.99,11.74
3,3,"Sophia",42,"Washington",16,"Apple","groceries",3,1.99,5.97,5.22
4,1,"Emily",29,"Phoenix",15,"Wooden Bathroom Sink With Mirror","furniture",1,799.99,799.99,729.59
4,1,"Emily",29,"Phoenix",141,"Basketball Rim","sports-accessories",4,39.99,159.96,147.58
5,4,"James",45,"Seattle",141,"Basketball Rim","sports-accessories",5,39.99,199.95,184.47
5,4,"James",45,"Seattle",3,"Powder Canister","beauty",3,14.99,44.97,40.54
5,4,"James",45,"Seattle",17,"Beef Steak","groceries",5,12.99,64.95,58.71
6,5,"Emma",30,"Jacksonville",100,"Apple Airpods","mobile-accessories",2,129.99,259.98,219.58
"""
CLEANED_PRODUCTS = """\
"product_id","name","category","brand","price"
15,"Wooden Bathroom Sink With Mirror","furniture","Bath Trends",799.99
100,"Apple Airpods","mobile-accessories","Apple",129.99
122,"iPhone 6","smartphones","Apple",299.99
"""
