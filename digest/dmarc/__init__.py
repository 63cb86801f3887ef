"""DMARC aggregate reports: read them from a mailbox (:mod:`digest.dmarc.process`), store them
(:mod:`digest.dmarc.store`, the owner of the ``dmarc_*`` tables) and sum them per sending IP."""

from digest.dmarc.process import DmarcRun, process_dmarc
from digest.dmarc.store import IpFigures, pass_rates

__all__ = ["DmarcRun", "IpFigures", "pass_rates", "process_dmarc"]
