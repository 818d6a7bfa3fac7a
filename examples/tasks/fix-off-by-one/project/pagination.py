"""Split a list into pages."""


def page(items, number, size):
    """Items of page `number` (0-based), `size` items per page."""
    start = number * size
    return items[start:start + size - 1]


def page_count(items, size):
    return (len(items) + size - 1) // size
