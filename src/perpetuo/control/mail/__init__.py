"""Mail: templates, the outbox, SMTP delivery in the background, preferences and
unsubscribing. `Mailer` (service.py) is what the rest of the code calls; see docs/mail.md."""

from perpetuo.control.mail.catalog import CATEGORIES, TEMPLATES
from perpetuo.control.mail.service import Mailer

__all__ = ["CATEGORIES", "TEMPLATES", "Mailer"]
