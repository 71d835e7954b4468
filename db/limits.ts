/**
 * D1's statement limits, which workerd's local D1 enforces as the hosted one does: at most 100
 * bound parameters per statement ("too many SQL variables" beyond). A multi-row insert binds
 * each row's columns, so it must be cut into statements of few enough rows.
 */

/** Bound parameters one D1 statement may hold. */
export const D1_MAX_BOUND_PARAMETERS = 100;

/**
 * `rows` in consecutive chunks that each bind at most {@link D1_MAX_BOUND_PARAMETERS} when a row
 * binds at most `paramsPerRow` (a table's column count is a safe bound).
 */
export function d1RowChunks<T>(rows: readonly T[], paramsPerRow: number): T[][] {
  if (!(paramsPerRow >= 1 && paramsPerRow <= D1_MAX_BOUND_PARAMETERS))
    throw new RangeError(`d1RowChunks: ${paramsPerRow} parameters per row`);
  const size = Math.floor(D1_MAX_BOUND_PARAMETERS / paramsPerRow);
  const chunks: T[][] = [];
  for (let i = 0; i < rows.length; i += size) chunks.push(rows.slice(i, i + size));
  return chunks;
}
