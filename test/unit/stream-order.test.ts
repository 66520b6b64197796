import { finalBeforeEnd } from '../../bench/stream-order';

const stack = (...sizes: number[]) => sizes.map((bytes, i) => ({ name: `l${i}`, bytes }));

describe('finalBeforeEnd: what a converter on mksquashfs could take before the save stream ends', () => {
  it('takes every layer when the stream sends them top first', () => {
    expect(finalBeforeEnd({ stack: stack(100, 10, 1), arrival: ['l2', 'l1', 'l0'] })).toEqual({
      early: 111,
      total: 111,
    });
  });

  it('takes only the top layer when the stream sends them base first', () => {
    expect(finalBeforeEnd({ stack: stack(100, 10, 1), arrival: ['l0', 'l1', 'l2'] })).toEqual({
      early: 1,
      total: 111,
    });
  });

  it('makes a layer wait for any layer above it that arrives later', () => {
    // l1 comes before l2 (above it): l1 and so l0 wait; l2 is the top.
    expect(finalBeforeEnd({ stack: stack(100, 10, 1), arrival: ['l1', 'l2', 'l0'] })).toEqual({
      early: 101,
      total: 111,
    });
  });
});
