// aws-local-stepfunctions 3 is built for Node >= 22 and calls
// Promise.withResolvers, which Node 20 lacks. Load this first:
//   node --import ./polyfill.mjs run.mjs ...
//   NODE_OPTIONS="--import ./polyfill.mjs" npx local-sfn ...
// run.mjs imports it too, so plain `node run.mjs` works as well.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      // `this`, as the built-in does, so subclasses get their own kind of promise.
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
