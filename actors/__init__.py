"""The actor processes, one module each (`python -m actors.<name>`).

This package is imported before any actor module, which makes it the one
place to quiet authlib's import-time deprecation warning about its httpx
integration (schwab-py's choice, not ours). authlib turns that warning on
with an 'always' filter when it loads, so ours must come after that and
before schwab-py imports the integration; left alone it would be the only
non-JSON line in an actor's log.
"""

import warnings

import authlib.deprecate  # noqa: F401  (installs authlib's filter, which ours must follow)

warnings.filterwarnings("ignore", message="The httpx module is deprecated")
