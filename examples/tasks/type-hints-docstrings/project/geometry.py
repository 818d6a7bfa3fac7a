import math


def circle_area(radius):
    return math.pi * radius ** 2


def rectangle_area(width, height):
    return width * height


def distance(x1, y1, x2, y2):
    return math.hypot(x2 - x1, y2 - y1)


def _square(x):
    return x * x
