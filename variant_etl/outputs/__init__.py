"""The read-back side: what reads an output that ``launch`` wrote (its manifest, the selection
of regions and samples, ``query``, ``export`` to VCF, the BigQuery source, the HTML report).
Never imports Beam: these commands start in well under a second, and take typed arguments so
that they can be called from Python."""
