"""A tiny service the example image runs."""


def greet(name):
    return "hello, {}".format(name)


if __name__ == "__main__":
    print(greet("world"))
