// Fragment (included by the *-subgroup families, not a family of its own): dense slots for
// per-subgroup partials in a workgroup of WG invocations (WG is the includer's constant).
// WGSL fixes neither the subgroup size nor which invocations share a subgroup, so each
// subgroup's leader (subgroupElect) takes a slot by its rank among the leaders, read from a
// bitmask of leader invocations: partials are dense, and always combined in one order (sums
// are deterministic run to run), for any subgroup size.

const MASK_WORDS: u32 = (WG + 31u) / 32u;

var<workgroup> leaders: array<atomic<u32>, MASK_WORDS>;
var<private> sg_leader: bool;
var<private> sg_rank: u32;
var<private> sg_count: u32;

// Which invocation leads its subgroup, that subgroup's slot, and how many subgroups there are.
// Called once, in uniform control flow, before any reduction.
fn subgroup_slots(lid: u32) {
  if (lid < MASK_WORDS) { atomicStore(&leaders[lid], 0u); }
  workgroupBarrier();
  sg_leader = subgroupElect();
  if (sg_leader) { atomicOr(&leaders[lid / 32u], 1u << (lid % 32u)); }
  workgroupBarrier();
  sg_rank = 0u;
  sg_count = 0u;
  for (var w = 0u; w < MASK_WORDS; w++) {
    let bits = atomicLoad(&leaders[w]);
    sg_count += countOneBits(bits);
    if (w < lid / 32u) { sg_rank += countOneBits(bits); }
    if (w == lid / 32u) { sg_rank += countOneBits(bits & ((1u << (lid % 32u)) - 1u)); }
  }
}
