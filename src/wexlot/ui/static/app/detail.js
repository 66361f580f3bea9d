// PLACEHOLDER (being built): replaced before commit.
import { h } from './dom.js'

export class DetailView {
  constructor() {
    this.heading = h('h1', { tabindex: '-1' }, 'DetailView')
    this.el = h('section', {}, this.heading)
  }

  async start() {}

  destroy() {}
}
