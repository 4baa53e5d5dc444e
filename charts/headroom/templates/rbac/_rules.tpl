{{/*
Every permission the operator has, in one place. The operator Role (or ClusterRole with
rbac.clusterWide) takes "headroom.rbac.operatorRules"; the Lease rules go into a Role in the
release namespace either way, since the Lease lives there. Tests load these rules from the
rendered chart into the API emulator, so the e2e suite proves they suffice.
*/}}
{{- define "headroom.rbac.operatorRules" -}}
- apiGroups: ["headroom.dev"]
  resources: ["redisclusters"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["headroom.dev"]
  resources: ["redisclusters/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["headroom.dev"]
  resources: ["capacitypolicies"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["headroom.dev"]
  resources: ["capacitypolicies/status"]
  verbs: ["get", "patch", "update"]
{{- /* create and delete: `headroom surge` and the inbound alert receiver add events */}}
- apiGroups: ["headroom.dev"]
  resources: ["demandevents"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
{{- /* The RedisCluster operator's StatefulSets: one per shard group, created and deleted */}}
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
{{- /* Scale targets, per target kind: generated from the target registry (_target_rules.tpl) */}}
{{- include "headroom.rbac.targetRules" . }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- if or (not .Values.rbac.clusterWide) .Values.rbac.secrets.clusterWide }}
{{- include "headroom.rbac.secretRules" . }}
{{- end }}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Secrets, apart from the other rules: in a cluster-wide install they are granted per
namespace (rbac.secrets.namespaces, plus the release namespace), not in every namespace,
unless rbac.secrets.clusterWide opts in. Each RedisCluster's auth Secret
(<name>-redis-auth, its password) is created once by the operator, owned by the
RedisCluster, read by name (and so is spec.auth's Secret); never updated, listed or
deleted (garbage collection deletes it with the RedisCluster). RBAC cannot limit "create"
or these names (they follow the RedisClusters) with resourceNames.
*/}}
{{- define "headroom.rbac.secretRules" }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
{{- end }}

{{/*
Leader election: "create" cannot be limited to a name (the object does not exist yet), the
other verbs are limited to the one Lease.
*/}}
{{- define "headroom.rbac.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "headroom.leaseName" . | quote }}]
  verbs: ["get", "update", "patch"]
{{- end }}
