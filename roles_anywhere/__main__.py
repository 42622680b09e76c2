"""``python -m roles_anywhere`` is the ``roles-anywhere`` command."""

from .entry import main

raise SystemExit(main())
