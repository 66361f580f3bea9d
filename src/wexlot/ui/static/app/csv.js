// PLACEHOLDER (being built): registers list extras (listextras.js).
