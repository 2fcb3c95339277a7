import unittest

from services.greeter.greeter import greet


class GreeterTest(unittest.TestCase):
    def test_greets(self):
        self.assertEqual(greet("bazel"), "hello, bazel")


if __name__ == "__main__":
    unittest.main()
