"""Fill the SHA-256 of attachments stored without one (before hashes were kept, or whose file
was missing when migration 0011 ran). Safe to run again: only empty hashes are filled."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from messaging.attachments import file_sha256
from messaging.models import Attachment


class Command(BaseCommand):
    help = "Fill the SHA-256 of attachments stored before hashes were kept."

    def handle(self, *args, **options):
        filled = missing = 0
        for attachment in Attachment.objects.filter(sha256="").iterator(chunk_size=200):
            try:
                digest = file_sha256(attachment.file)
            except OSError:
                missing += 1
                continue
            filled += Attachment.objects.fill_sha256(pk=attachment.pk, sha256=digest)
        self.stdout.write(f"{filled} hashed, {missing} files missing from storage")
