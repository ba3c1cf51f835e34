enable subgroups;
// The softmax family (softmax, log-softmax, fused cross-entropy; see softmax.wgsl) with each
// row's sums and maxima folded by subgroupAdd / subgroupMax and one partial per subgroup
// combined through workgroup memory: two barriers per reduction instead of a tree's
// log2(WG) + 1. For adapters with the `subgroups` feature; correct for any subgroup size (see
// subgroup-slots.wgsl).

// @include softmax-rows
// @include subgroup-slots

var<workgroup> partial: array<f32, WG>;

fn reduce_setup(lid: u32) { subgroup_slots(lid); }

// Sum (or max) of one value per invocation across the workgroup; every invocation gets it.
fn wg_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
  var s = 0.0;
  if (is_max) { s = subgroupMax(v); } else { s = subgroupAdd(v); }
  if (sg_leader) { partial[sg_rank] = s; }
  workgroupBarrier();
  var r = partial[0];
  for (var i = 1u; i < sg_count; i++) { r = select(r + partial[i], max(r, partial[i]), is_max); }
  workgroupBarrier();
  return r;
}
