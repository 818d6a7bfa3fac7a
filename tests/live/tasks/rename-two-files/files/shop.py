def calc_total(prices):
    total = 0
    for p in prices:
        total += p
    return total
