"""Offline stand-in for rules_shell: the native sh_test of Bazel 4.2.3."""

def sh_test(**kwargs):
    native.sh_test(**kwargs)  # buildifier: disable=native-sh-test
