from limits import MAX_SIZE


def fits(items):
    return len(items) <= MAX_SIZE
