// koa 2.13.4, installed as `koa-2-13` for test/http/koa-versions.test.ts, has no types of its own: it is
// typed as the `koa` the project checks against (its class lacks `currentContext`, which the test is about).
declare module 'koa-2-13' {
  import Koa from 'koa';
  export default Koa;
}
