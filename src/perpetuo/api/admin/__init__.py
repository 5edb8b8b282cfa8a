"""The admin REST API (`/api/...`, OpenAPI at `/docs`): HTTP only, rules live in control/."""
