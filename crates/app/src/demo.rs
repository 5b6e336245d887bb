//! Demo data for `changegate serve --demo`. (Filled in below.)
