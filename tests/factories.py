from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from messaging.models import Thread
from portal.models import Business, Customer, Project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")


class StaffUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    first_name = "Mike"
    is_staff = True
    password = factory.django.Password("correct horse battery")


class BusinessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Business

    name = "Mike's Contracting"
    initials = "MC"
    phone = "+15555550100"
    sms_number = "+15555550100"
    email = "office@mikescontracting.example"
    time_zone = "America/New_York"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    business = factory.SubFactory(BusinessFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda c: c.user.email)
    # +1 555-554: no test spells a number there (the fixed ones, 555-0100 to 555-0999 and
    # more, met this sequence once it had made a hundred customers).
    phone = factory.Sequence(lambda n: f"+1555554{n % 10000:04d}")
    time_zone = "America/New_York"


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    customer = factory.SubFactory(CustomerFactory)
    code = factory.Sequence(lambda n: f"PRJ-{1000 + n}")
    title = "Deck Replacement Project"
    status = Project.Status.ACTIVE
    plan_type = "Premium Plan"


class ThreadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thread
        django_get_or_create = ("customer",)

    customer = factory.SubFactory(CustomerFactory)
