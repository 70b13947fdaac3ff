/**
 * The live progress line: on a terminal one line rewritten in place
 * ("[3/8] wireguard-go: TCP 4 streams (5 s): measuring"), elsewhere one line
 * per change. Finished results are printed as permanent lines.
 */
export class Progress {
  readonly #tty: boolean
  readonly #t0 = Date.now()
  #last = ''
  #shown = false

  constructor (stream: NodeJS.WriteStream = process.stderr) {
    this.#tty = stream.isTTY === true
    this.#stream = stream
  }

  readonly #stream: NodeJS.WriteStream

  #stamp (): string {
    const s = Math.round((Date.now() - this.#t0) / 1000)
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
  }

  /** Replaces the live line. */
  update (text: string): void {
    if (text === this.#last) return
    this.#last = text
    if (this.#tty) {
      const cols = this.#stream.columns ?? 120
      this.#stream.write(`\r\x1b[K${`${this.#stamp()} ${text}`.slice(0, cols - 1)}`)
      this.#shown = true
    } else if (!text.includes('waiting for a quiet machine')) {
      this.#stream.write(`${this.#stamp()} ${text}\n`)
    }
  }

  /** A permanent line above the live one. */
  log (text: string): void {
    if (this.#tty && this.#shown) this.#stream.write('\r\x1b[K')
    this.#stream.write(`${this.#stamp()} ${text}\n`)
    if (this.#tty && this.#shown && this.#last !== '') this.#stream.write(`${this.#stamp()} ${this.#last}`)
  }

  done (): void {
    if (this.#tty && this.#shown) this.#stream.write('\r\x1b[K')
    this.#shown = false
  }
}
