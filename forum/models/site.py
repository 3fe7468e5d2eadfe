"""Site content that admins edit: the crisis resources shown behind "Need help now?"."""

from django.core.validators import URLValidator
from django.db import models

# Shown when admins have not configured any resources, so the page is never empty.
DEFAULT_CRISIS_RESOURCES = [
    {
        "name": "Your local emergency number",
        "region": "Anywhere",
        "contact": "112 / 911 / 999",
        "description": "If you or someone else is in immediate danger, call your local "
        "emergency number now.",
        "url": "",
    },
    {
        "name": "988 Suicide & Crisis Lifeline",
        "region": "United States",
        "contact": "Call or text 988",
        "description": "Free, confidential support 24/7 for people in distress, including "
        "substance use crises.",
        "url": "https://988lifeline.org/",
    },
    {
        "name": "Samaritans",
        "region": "UK & Ireland",
        "contact": "116 123",
        "description": "Free, any time, from any phone. Someone will listen without judgement.",
        "url": "https://www.samaritans.org/",
    },
]


class CrisisResource(models.Model):
    name = models.CharField(max_length=120)
    region = models.CharField(max_length=80, help_text='Where it helps, e.g. "US" or "Anywhere".')
    contact = models.CharField(max_length=120, help_text="A phone number, text code or address.")
    description = models.TextField(blank=True)
    url = models.URLField(blank=True, validators=[URLValidator(schemes=["https", "http"])])
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"
