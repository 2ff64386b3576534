"""Network policy as Cilium enforces it: who a caller is, which policies select a pod, the verdict, the flow log.

`identity` (labels of a caller, the way Cilium derives a security identity), `rules` (CiliumNetworkPolicy and
NetworkPolicy compiled and evaluated), `flows` (Hubble-shaped records of every verdict), `enforcement` (the
local gateway's edge check), `callers` (the ephemeral pod `call_as` runs on a cluster), `report` (the tables a
notebook shows).
"""
