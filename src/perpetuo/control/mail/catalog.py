"""Which mails exist, and which of them people may turn off.

A template with a category is non-transactional: it is sent only to people who have not
opted out of its category, and carries an unsubscribe link. Transactional mail (account
security, invitations, failed payments) is always sent.
"""

from __future__ import annotations

# Category ids people can turn off, and how the dashboard names them.
CATEGORIES: dict[str, str] = {
    "billing": "Trial and plan reminders",
    "balance": "Low prepaid balance",
    "budget": "Budget alerts (spend reached a workspace's alert threshold)",
    "keys": "API keys about to expire",
    "alerts": "Alerts (rules a workspace or the platform set up, sent by e-mail)",
}

# Template name -> its category, or None for transactional mail.
TEMPLATES: dict[str, str | None] = {
    "verify_email": None,
    "password_reset": None,
    "invite": None,
    "payment_failed": None,
    "receipt": None,
    "trial_ending": "billing",
    "low_balance": "balance",
    "budget_alert": "budget",
    "key_expiring": "keys",
    "alert": "alerts",
}


def category_of(template: str) -> str | None:
    """The template's category; KeyError for a template that does not exist."""
    return TEMPLATES[template]
