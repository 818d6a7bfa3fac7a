def last(items):
    """Return the last item of a non-empty list."""
    return items[len(items)]
