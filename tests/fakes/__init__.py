"""Fake providers at the network edge: Twilio, Postmark (through anymail) and a Web Push
service, each a real HTTP server on 127.0.0.1 that the real client libraries talk to."""
