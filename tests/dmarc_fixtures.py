"""DMARC aggregate reports (rua) as receivers mail them, written here for the tests."""

from __future__ import annotations

import gzip
import io
import zipfile
from email.message import EmailMessage

OUR_IP = "192.0.2.10"  # in [dmarc] our_ips = ["192.0.2.0/28"]
SPOOFER_IP = "203.0.113.66"  # sends as news.example.org and is not ours


def record(ip: str, count: int, dkim: str, spf: str, disposition: str = "none") -> str:
    """One <record>: ``count`` messages from ``ip`` with DMARC's DKIM/SPF alignment results."""
    return f"""
  <record>
    <row>
      <source_ip>{ip}</source_ip>
      <count>{count}</count>
      <policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated>
    </row>
    <identifiers><header_from>news.example.org</header_from></identifiers>
    <auth_results>
      <dkim><domain>news.example.org</domain><selector>digest</selector><result>{dkim}</result></dkim>
      <spf><domain>news.example.org</domain><result>{spf}</result></spf>
    </auth_results>
  </record>"""


def aggregate_xml(report_id: str, records: list[str], *, begin: int, org: str = "google.com") -> bytes:
    """A whole aggregate report for news.example.org covering one day from ``begin`` (epoch seconds)."""
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{org}</org_name>
    <email>noreply-dmarc-support@{org}</email>
    <report_id>{report_id}</report_id>
    <date_range><begin>{begin}</begin><end>{begin + 86399}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>news.example.org</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>
  </policy_published>{"".join(records)}
</feedback>
""".encode()


def report_mail(xml: bytes, *, how: str = "gzip", name: str = "report", org: str = "google.com") -> bytes:
    """An email carrying ``xml`` as receivers send it: gzipped (``gzip``), zipped (``zip``) or plain."""
    msg = EmailMessage()
    msg["From"] = f"noreply-dmarc-support@{org}"
    msg["To"] = "dmarc@news.example.org"
    msg["Subject"] = f"Report domain: news.example.org Submitter: {org} Report-ID: {name}"
    msg["Message-ID"] = f"<{name}@{org}>"
    msg.set_content("This is an aggregate report from " + org)
    if how == "gzip":
        msg.add_attachment(
            gzip.compress(xml), maintype="application", subtype="gzip", filename=f"{name}.xml.gz"
        )
    elif how == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.xml", xml)
        msg.add_attachment(buffer.getvalue(), maintype="application", subtype="zip", filename=f"{name}.zip")
    else:
        msg.add_attachment(xml, maintype="text", subtype="xml", filename=f"{name}.xml")
    return msg.as_bytes()


BOMB_XML = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<feedback><report_metadata><org_name>&lol4;</org_name></report_metadata></feedback>
"""
