"""Mail: a rendered variant → the message one reader gets, and the list's transactional mail.

Entry points: :func:`digest.mail.message.prepare_message` (once per variant) and
:meth:`~digest.mail.message.PreparedMessage` filled per recipient;
:func:`digest.mail.preview.preview_issue`; :mod:`digest.mail.outbox` for sign-up mail.

- ``message`` — build an issue's email: prepared once per variant, filled per recipient.
- ``signing`` — DKIM: which headers are signed, and a fast RSA signer.
- ``verp`` — the envelope sender (Return-Path) of each message handed over.
- ``outbox`` — confirmation, welcome and already-subscribed mail through ``outbox``.
- ``preview`` — an issue as one subscriber (or one category set) would get it.

Transports (``digest.mail.transports``, to become ``digest/mail/transports/``) send one
prepared message. Imports render and the layers below. This module defines nothing.
"""
