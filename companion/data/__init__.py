"""Aligned audio–sheet training corpus builder.

Symbolic scores (kern, MusicXML, MEI, ABC via verovio; LilyPond via lilypond)
are engraved to pages, performed with expressive timing, synthesised with
FluidSynth and stored with every notehead's page position and onset time(s).
See docs/corpus-format.md for the on-disk format.
"""
