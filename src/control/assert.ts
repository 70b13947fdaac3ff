/** Exhaustiveness check for `switch` over a union: a new member the switch forgets is a compile error, and a value outside the type at run time throws. */
export function assertNever (x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`)
}
