"""Models: churn, probabilistic CLV (BG/NBD + Gamma-Gamma), intent, segmentation, anomalies,
evaluation, registry. Import the submodule you need (``from mktpipe.models import clv``); this
package imports none of them, so importing it stays cheap."""
