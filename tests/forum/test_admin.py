"""forum.admin: what staff edit there."""

from django.contrib import admin

from forum.models import CrisisResource


def test_a_crisis_resource_link_typed_without_a_scheme_is_a_secure_one(rf):
    model_admin = admin.site._registry[CrisisResource]
    form_class = model_admin.get_form(rf.get("/"))
    form = form_class(
        data={
            "name": "Warmline",
            "region": "Anywhere",
            "contact": "0800 000 000",
            "url": "warmline.example.org/talk",
            "position": 0,
            "is_active": True,
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["url"] == "https://warmline.example.org/talk"
