"""Outputs of a run, all rendered from the certificate or the claim results.

* :mod:`.certificate`  the versioned certificate JSON (schema ``certificate.v<N>.schema.json``)
* :mod:`.terminal`     the lines under the claim ladder: licensable sentences, envelope, paths
* :mod:`.html`         the self-contained HTML report (Jinja2, autoescaped) with :mod:`.plots`
* :mod:`.evidence`     discordant examples and judge agreement carried by the certificate
* :mod:`.snapshot`     syrupy verdict snapshots (verdict, tier, band, scope per claim)
"""
