"""Storage: the partition layout, file formats, atomic writes, locks and the ``latest`` pointer."""
