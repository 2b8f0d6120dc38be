"""Builders the tests (and a few benches) share: small real libraries, synthetic campaign stores. Not shipped in the
package; pytest puts ``tests/`` on the path (pyproject ``pythonpath``), so tests import ``support.library``."""
