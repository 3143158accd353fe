# SPDX-License-Identifier: Apache-2.0
# A package, so its modules (reference.py, conftest.py) do not clash with the
# kernel suite's top-level ones in tests/.
