from shop import calc_total


def main():
    print(calc_total([1, 2, 3]))


if __name__ == "__main__":
    main()
