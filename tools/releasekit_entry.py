#!/usr/bin/env python3
"""Runs releasekit from its source tree: what Bazel actions and release targets execute."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from releasekit.cli import main

sys.exit(main())
