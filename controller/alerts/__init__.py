"""Alert hooks: tell on-call when the plan and reality part, and take Alertmanager's word
for an emergency scale-up.

Out: :mod:`.rules` decides which alerts hold after a control-loop pass (pure);
:mod:`.notifier` delivers them off the loop's thread (bounded queues, retries, rate
limits, de-duplication, counted drops, restart-safe state); one file per sink behind the
:class:`~.base.AlertSink` protocol — :mod:`.webhook` (signed JSON), :mod:`.slack`
(Block Kit), :mod:`.pagerduty` (Events API v2), :mod:`.alertmanager` (``/api/v2/alerts``);
:mod:`.config` reads the operator-level config (sinks and their secret references) and
builds a policy's notifier. In: :mod:`.inbound` serves ``POST /hooks/alertmanager`` and
maps firing alerts onto surge events (:mod:`headroom.controller.surge`).
See ``docs/alerts.md``.
"""
