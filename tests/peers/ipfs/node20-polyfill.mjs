// Node 20 lacks Promise.withResolvers (Node >= 22), which helia and it-queue call.
// Load before anything else: node --import ./node20-polyfill.mjs helia_node.mjs ...
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
