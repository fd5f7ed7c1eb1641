// PostGraphile 5 needs Node 22 (its executor calls Promise.withResolvers); Node 20 lacks
// it. Loaded with `node --require`, this adds it, as Node 22 defines it.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((yes, no) => { resolve = yes; reject = no; });
    return { promise, resolve, reject };
  };
}
