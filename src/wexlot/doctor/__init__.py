"""``wexlot doctor``: named health checks of a deployment, each with a one-line fix when it fails.

:mod:`wexlot.doctor.runner` defines the check shape and runs them; :mod:`wexlot.doctor.checks` holds
the built-in checks in :data:`~wexlot.doctor.checks.CHECKS`. To add one, write a function taking a
:class:`~wexlot.doctor.runner.Context` and returning :func:`passed`, :func:`failed`, :func:`warned`
or :func:`skipped`, and list it as a :class:`Check` (with ``requires`` naming checks it builds on).
"""

from wexlot.doctor.runner import Check, CheckResult, Context, failed, passed, run_checks, skipped, warned

__all__ = ["Check", "CheckResult", "Context", "failed", "passed", "run_checks", "skipped", "warned"]
