"""Looking inside a model: per-layer probes of one batch, health checks, traces."""

from chainrule.diagnostics.health import (
    HealthReport,
    HealthThresholds,
    HealthWarning,
    LayerHealth,
    ParamNorms,
    check_health,
)
from chainrule.diagnostics.monitor import HealthMonitor
from chainrule.diagnostics.probe import LayerProbe, ProbeResult, probe
from chainrule.diagnostics.trace import BackpropTrace, TraceLine, trace

__all__ = [
    "BackpropTrace",
    "HealthMonitor",
    "HealthReport",
    "HealthThresholds",
    "HealthWarning",
    "LayerHealth",
    "LayerProbe",
    "ParamNorms",
    "ProbeResult",
    "TraceLine",
    "check_health",
    "probe",
    "trace",
]
