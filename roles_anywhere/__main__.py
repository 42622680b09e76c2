"""``python -m roles_anywhere`` is the ``roles-anywhere`` command."""

from .cli import main

raise SystemExit(main())
