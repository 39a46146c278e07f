"""Human channels into the case system: resident reports (报), patrol reports (采), hotline / front desk (收).

Reports become ``Anomaly(source="report")`` filed through the same intake as cameras and alarms; see
docs/CHANNELS.md. One module a channel (``resident``, ``patrol``, ``hotline``) over the shared ``filing`` path;
entry point ``alerts.channels.build.build_channels(core, setup)`` over the core ``alerts.core.build_core`` built.
"""
from alerts.channels.masking import install_log_masking

install_log_masking()
