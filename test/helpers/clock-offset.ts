/**
 * Preloaded with `node --require` into a worker under test: this process's wall clock reads
 * DISPATCH_TEST_CLOCK_OFFSET_MS off (a host whose clock disagrees with the others). Monotonic clocks
 * (performance.now, process.hrtime) are left alone, as on a real host.
 */
const offset = Number(process.env.DISPATCH_TEST_CLOCK_OFFSET_MS ?? 0);
if (Number.isFinite(offset) && offset !== 0) {
  const Real = Date;
  class Skewed extends Real {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(Real.now() + offset);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return Real.now() + offset;
    }
  }
  globalThis.Date = Skewed as DateConstructor;
}
