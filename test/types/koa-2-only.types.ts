// Compile-only, and only in tsconfig.koa2.json's program (`npm run typecheck:koa2`; tsconfig.json leaves it
// out): fails unless `koa` there is @types/koa 2, so that the koa 2 type-check cannot silently check
// against @types/koa 3. The other files of test/types/ then prove that @types/koa 2 rejects the same wrong
// arguments to ctx.raincheck() as @types/koa 3.
import Koa, { type Context } from 'koa';
import { raincheck } from '../../src/index.js';

declare const ctx: Context;
// @types/koa 2 only: @types/koa 3 takes one argument (Koa 3 dropped redirect('back', alt) for ctx.back(alt)).
ctx.redirect('back', '/');

new Koa({ asyncLocalStorage: true }).use(raincheck());
