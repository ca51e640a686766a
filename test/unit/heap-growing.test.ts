import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/common/errors';
import { applyHeapGrowing, HEAP_GROWING_PERCENT_DEFAULT } from '../../src/workers/memory';

describe('DISPATCH_HEAP_GROWING_PERCENT', () => {
  test('unset or empty: the default; 0: V8 chooses; a whole number up to 1000 is taken', () => {
    assert.equal(applyHeapGrowing({}), HEAP_GROWING_PERCENT_DEFAULT);
    assert.equal(applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: '' }), HEAP_GROWING_PERCENT_DEFAULT);
    assert.equal(applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: '80' }), 80);
    assert.equal(applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: '0' }), 0);
  });

  test('anything else is refused with a message that names the variable', () => {
    for (const bad of ['-1', '1001', '12.5', 'lots', '50%', '0x32', '5e1', ' 50'])
      assert.throws(
        () => applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: bad }),
        (e: unknown) => e instanceof UserError && /DISPATCH_HEAP_GROWING_PERCENT/.test(e.message),
        bad,
      );
  });
});
