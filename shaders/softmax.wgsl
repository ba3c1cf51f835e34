// Row-wise softmax family over a contiguous [rows, classes] input, one workgroup per row,
// every row reduction done in workgroup memory so any number of classes works: softmax,
// log-softmax and fused cross-entropy. With integer labels the loss is logsumexp(x) - x[label]
// and the gradient (softmax(x) - onehot(label)) g[row]; a label outside [0, classes) yields NaN.
// Both stay exact when the label's logit dominates: 1 - softmax(x)[label] and log(softmax) would
// round to 0 in float32 from a margin of about 16, so the loss is log1p of the other classes'
// summed exp(x_k - x_label) and the label's gradient is minus the other classes' probability.
// With probability targets t (one-hot or soft) the loss is sum(t) logsumexp(x) - sum(t x) and
// the gradient (softmax(x) sum(t) - t) g[row].

// @include softmax-rows

var<workgroup> red: array<f32, WG>;

// Sum (or max) of one value per invocation across the workgroup, as a tree in workgroup memory.
fn wg_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = select(red[lid] + red[lid + s], max(red[lid], red[lid + s]), is_max); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_setup(lid: u32) {}
